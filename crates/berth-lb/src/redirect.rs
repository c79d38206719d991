//! ELB redirect actions: expanding `#{protocol}` `#{host}` `#{port}` `#{path}` `#{query}`
//! into a `Location`. Pure, so the placeholder rules are tested without sockets.

/// A redirect action with ELB's defaults filled in for missing fields.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RedirectTemplate {
    pub protocol: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub query: String,
    pub status: u16,
}

impl RedirectTemplate {
    pub fn new(
        protocol: Option<&str>,
        host: Option<&str>,
        port: Option<&str>,
        path: Option<&str>,
        query: Option<&str>,
        status: u16,
    ) -> Self {
        Self {
            protocol: protocol.unwrap_or("#{protocol}").to_owned(),
            host: host.unwrap_or("#{host}").to_owned(),
            port: port.unwrap_or("#{port}").to_owned(),
            path: path.unwrap_or("/#{path}").to_owned(),
            query: query.unwrap_or("#{query}").to_owned(),
            status: if status == 301 { 301 } else { 302 },
        }
    }
}

/// The original request's URL components, as placeholders see them.
pub(crate) struct Original<'a> {
    pub protocol: &'a str,
    /// Without the port.
    pub host: &'a str,
    pub port: u16,
    /// With its leading `/`.
    pub path: &'a str,
    /// Without the `?`.
    pub query: &'a str,
}

fn expand(template: &str, o: &Original<'_>, port: &str) -> String {
    template
        .replace("#{protocol}", o.protocol)
        .replace("#{host}", o.host)
        .replace("#{port}", port)
        .replace("#{path}", o.path.strip_prefix('/').unwrap_or(o.path))
        .replace("#{query}", o.query)
}

/// The `Location` header value of a redirect.
pub(crate) fn location(t: &RedirectTemplate, o: &Original<'_>) -> String {
    let port = o.port.to_string();
    let protocol = expand(&t.protocol, o, &port).to_ascii_lowercase();
    let host = expand(&t.host, o, &port);
    let port = expand(&t.port, o, &port);
    let mut path = expand(&t.path, o, &o.port.to_string());
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    let query = expand(&t.query, o, &o.port.to_string());
    let default_port = matches!(
        (protocol.as_str(), port.as_str()),
        ("http", "80") | ("https", "443")
    );
    let mut out = format!("{protocol}://{host}");
    if !default_port && !port.is_empty() {
        out.push(':');
        out.push_str(&port);
    }
    out.push_str(&path);
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orig() -> Original<'static> {
        Original {
            protocol: "http",
            host: "example.com",
            port: 8080,
            path: "/a/b",
            query: "x=1",
        }
    }

    #[test]
    fn defaults_keep_everything() {
        let t = RedirectTemplate::new(None, None, None, None, None, 302);
        assert_eq!(location(&t, &orig()), "http://example.com:8080/a/b?x=1");
    }

    #[test]
    fn http_to_https() {
        let t = RedirectTemplate::new(Some("HTTPS"), None, Some("443"), None, None, 301);
        assert_eq!(t.status, 301);
        assert_eq!(location(&t, &orig()), "https://example.com/a/b?x=1");
    }

    #[test]
    fn placeholders_compose() {
        let t = RedirectTemplate::new(
            None,
            Some("www.#{host}"),
            Some("80"),
            Some("/new/#{path}"),
            Some("#{query}&from=lb"),
            302,
        );
        assert_eq!(
            location(&t, &orig()),
            "http://www.example.com/new/a/b?x=1&from=lb"
        );
        let o = Original {
            query: "",
            ..orig()
        };
        let t = RedirectTemplate::new(None, None, None, None, None, 302);
        assert_eq!(location(&t, &o), "http://example.com:8080/a/b");
    }
}
