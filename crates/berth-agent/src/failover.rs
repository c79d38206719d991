//! Several server URLs, one in use: how agents (and the `berth` CLI) fail over between the
//! replicas of a control plane.
//!
//! Why: every replica serves the whole API and an agent's instance credential lives in the
//! shared store, so any replica can take an agent's next call without a re-registration. The
//! rule is small and pure so both clients share it and tests can call it with plain data:
//!
//! - calls go to the *current* URL; it stays current as long as it answers (sticky), so an
//!   agent's long poll and its reports land on one replica in the normal case;
//! - a call that gets no answer (connection refused, reset, timeout) or a 5xx (a 503 from a
//!   replica whose store is unhealthy) is tried once on each next URL, in list order, within
//!   the same call; the first that answers becomes current;
//! - when every URL failed, the call returns the last error and the caller's own retry loop
//!   backs off (the agent doubles its wait up to 5 s) before the next round, which starts at
//!   the URL after the one that failed first, so a dead first URL is not always tried first.
//!
//! An answer below 500 (a 4xx refusal) is an answer: it is returned, never failed over, since
//! another replica would refuse the same request the same way.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The server URLs and which one is in use; clones share the choice.
#[derive(Debug, Clone)]
pub struct Endpoints {
    urls: Arc<Vec<String>>,
    current: Arc<AtomicUsize>,
}

/// Splits a comma-separated list of URLs (`http://a:9400,http://b:9400`), trimming blanks
/// and trailing slashes; empty entries are dropped.
pub fn split_urls(list: &str) -> Vec<String> {
    list.split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

/// Whether an answer with this HTTP status should be tried on the next URL.
pub fn fails_over_status(status: u16) -> bool {
    status >= 500
}

impl Endpoints {
    /// The URLs of a comma-separated list, the first one current. An empty list keeps one
    /// empty URL, so every call fails with the HTTP client's own "bad URL" error.
    pub fn parse(list: &str) -> Self {
        let mut urls = split_urls(list);
        if urls.is_empty() {
            urls.push(String::new());
        }
        Self {
            urls: Arc::new(urls),
            current: Arc::default(),
        }
    }

    /// Every URL, in list order.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// The URL in use now.
    pub fn current(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()]
    }

    /// The order to try the URLs in for one call: the current one, then the others in list
    /// order (wrapping around). Each item is the URL's index and the URL.
    pub fn order(&self) -> Vec<(usize, &str)> {
        let n = self.urls.len();
        let start = self.current.load(Ordering::Relaxed) % n;
        (0..n)
            .map(|k| {
                let i = (start + k) % n;
                (i, self.urls[i].as_str())
            })
            .collect()
    }

    /// URL `i` answered: it becomes (or stays) the current one.
    pub fn answered(&self, i: usize) {
        self.current.store(i, Ordering::Relaxed);
    }

    /// URL `i`, the first tried in a call, did not answer: if it is still current, the next
    /// one becomes current, so the next call starts there. (Callers report only a round's
    /// first failure: reporting each would walk the choice round the list back to the start.)
    pub fn failed(&self, i: usize) {
        let next = (i + 1) % self.urls.len();
        let _ = self
            .current
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_trims_lists() {
        assert_eq!(
            split_urls(" http://a:1/, ,http://b:2"),
            vec!["http://a:1", "http://b:2"]
        );
        assert_eq!(Endpoints::parse("").urls(), [""]);
    }

    #[test]
    fn sticks_to_a_url_that_answers_and_moves_past_one_that_fails() {
        let e = Endpoints::parse("http://a,http://b,http://c");
        assert_eq!(e.current(), "http://a");
        let order: Vec<_> = e.order().into_iter().map(|(_, u)| u).collect();
        assert_eq!(order, ["http://a", "http://b", "http://c"]);
        // a fails, b answers: b is current and stays so.
        e.failed(0);
        e.answered(1);
        assert_eq!(e.current(), "http://b");
        let order: Vec<_> = e.order().into_iter().map(|(i, _)| i).collect();
        assert_eq!(order, [1, 2, 0]);
        // A late failure report of a URL no longer current changes nothing.
        e.failed(0);
        assert_eq!(e.current(), "http://b");
        // A round started at b where everything fails reports b's failure (the first of the
        // round) only: the next round starts at c.
        e.failed(1);
        assert_eq!(e.current(), "http://c");
    }

    #[test]
    fn clones_share_the_choice() {
        let e = Endpoints::parse("http://a,http://b");
        let c = e.clone();
        c.answered(1);
        assert_eq!(e.current(), "http://b");
    }

    #[test]
    fn only_server_errors_fail_over() {
        assert!(fails_over_status(503) && fails_over_status(500));
        assert!(!fails_over_status(400) && !fails_over_status(404) && !fails_over_status(200));
    }
}
