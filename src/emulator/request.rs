//! A parsed Google API request: the path after the service prefix split into
//! percent-decoded segments, the custom verb (`...:getIamPolicy`) apart, the
//! query and the body. What every Google API handler receives.

use axum::body::Bytes;
use axum::http::Method;

/// One parsed Google API request.
pub(crate) struct Req {
    pub method: Method,
    /// `v1`, `v1beta1`, `v3`.
    pub version: String,
    /// Path segments after the version, percent-decoded, custom verb removed.
    pub segs: Vec<String>,
    /// Custom method (`getIamPolicy` in `...:getIamPolicy`).
    pub verb: Option<String>,
    pub query: Vec<(String, String)>,
    pub body: Bytes,
    pub now: i64,
}

impl Req {
    /// Parses `/{service}/{version}/{segments...}` (already split at `/`), or
    /// `None` when the path has no version or no segment after it.
    pub(crate) fn parse(
        method: Method,
        raw: &[&str],
        query: Vec<(String, String)>,
        body: Bytes,
        now: i64,
    ) -> Option<Req> {
        let (Some(version), true) = (raw.get(1), raw.len() > 2) else {
            return None;
        };
        let mut segs: Vec<String> = raw[2..].iter().map(|s| percent_decode(s)).collect();
        let mut verb = None;
        if let Some(last) = segs.last_mut()
            && let Some((head, v)) = last.split_once(':')
        {
            verb = Some(v.to_string());
            *last = head.to_string();
        }
        Some(Req {
            method,
            version: version.to_string(),
            segs,
            verb,
            query,
            body,
            now,
        })
    }

    /// First query value of `key`.
    pub(crate) fn query_get(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(
            percent_decode("sa%40p.iam.gserviceaccount.com"),
            "sa@p.iam.gserviceaccount.com"
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
