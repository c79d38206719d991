//! Series names.

use std::fmt;

/// The name of one time series: `namespace/metric/dim=value/...`, dimensions sorted by name
/// (then value), e.g. `ECS/CPUUtilization/cluster=default/service=web`.
///
/// Build it with [`SeriesKey::new`] so that the same dimensions in any order give the same
/// key. The tuple field is public for callers that already hold a canonical name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey(pub String);

impl SeriesKey {
    /// `namespace/metric` followed by `/name=value` for each dimension, sorted.
    pub fn new(namespace: &str, metric: &str, dims: &[(&str, &str)]) -> Self {
        let mut dims = dims.to_vec();
        dims.sort_unstable();
        let mut s = String::with_capacity(
            namespace.len()
                + metric.len()
                + 1
                + dims
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2)
                    .sum::<usize>(),
        );
        s.push_str(namespace);
        s.push('/');
        s.push_str(metric);
        for (k, v) in dims {
            s.push('/');
            s.push_str(k);
            s.push('=');
            s.push_str(v);
        }
        SeriesKey(s)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SeriesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_are_sorted() {
        let a = SeriesKey::new(
            "ECS",
            "CPUUtilization",
            &[("service", "web"), ("cluster", "default")],
        );
        let b = SeriesKey::new(
            "ECS",
            "CPUUtilization",
            &[("cluster", "default"), ("service", "web")],
        );
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "ECS/CPUUtilization/cluster=default/service=web");
        assert_eq!(SeriesKey::new("ECS", "M", &[]).to_string(), "ECS/M");
    }
}
