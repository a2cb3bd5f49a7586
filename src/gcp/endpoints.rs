//! Base URLs of the Google APIs `wi` calls. They follow gcloud's
//! `CLOUDSDK_API_ENDPOINT_OVERRIDES_*` variables so one setting points both
//! gcloud and `wi` at the same place (a sandbox, a proxy, the local emulator).

use url::Url;

use super::error::GcpError;

/// One base URL per API. Each ends with `/`; clients append `v1/...`, so a
/// base may carry a path prefix (`http://127.0.0.1:8080/container/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// GKE, `https://container.googleapis.com/`.
    pub container: Url,
    /// IAM, `https://iam.googleapis.com/`.
    pub iam: Url,
    /// Resource Manager, `https://cloudresourcemanager.googleapis.com/`.
    pub crm: Url,
    /// Service Usage, `https://serviceusage.googleapis.com/`.
    pub serviceusage: Url,
    /// IAM Credentials, `https://iamcredentials.googleapis.com/`.
    pub iamcredentials: Url,
    /// Security Token Service, `https://sts.googleapis.com/`.
    pub sts: Url,
}

/// (field, gcloud override variable suffix, default host).
const APIS: [(&str, &str, &str); 6] = [
    (
        "container",
        "CONTAINER",
        "https://container.googleapis.com/",
    ),
    ("iam", "IAM", "https://iam.googleapis.com/"),
    (
        "crm",
        "CLOUDRESOURCEMANAGER",
        "https://cloudresourcemanager.googleapis.com/",
    ),
    (
        "serviceusage",
        "SERVICEUSAGE",
        "https://serviceusage.googleapis.com/",
    ),
    (
        "iamcredentials",
        "IAMCREDENTIALS",
        "https://iamcredentials.googleapis.com/",
    ),
    ("sts", "STS", "https://sts.googleapis.com/"),
];

/// The environment variable gcloud reads to override an API's endpoint.
pub fn override_var(suffix: &str) -> String {
    format!("CLOUDSDK_API_ENDPOINT_OVERRIDES_{suffix}")
}

impl Endpoints {
    /// The real Google endpoints.
    pub fn google() -> Self {
        // Constant, valid URLs: parsing them cannot fail.
        let u = |s: &str| Url::parse(s).expect("constant endpoint URL");
        Self {
            container: u(APIS[0].2),
            iam: u(APIS[1].2),
            crm: u(APIS[2].2),
            serviceusage: u(APIS[3].2),
            iamcredentials: u(APIS[4].2),
            sts: u(APIS[5].2),
        }
    }

    /// Every API at `base` + its short name (`{base}container/`, `{base}iam/`, ...):
    /// the layout of the local emulator and of the request-level tests.
    pub fn all_under(base: &Url) -> Result<Self, GcpError> {
        let base = normalize(base.as_str(), "base URL")?;
        let at = |name: &str| {
            base.join(&format!("{name}/"))
                .map_err(|e| GcpError::Config(format!("bad base URL {base}: {e}")))
        };
        Ok(Self {
            container: at("container")?,
            iam: at("iam")?,
            crm: at("cloudresourcemanager")?,
            serviceusage: at("serviceusage")?,
            iamcredentials: at("iamcredentials")?,
            sts: at("sts")?,
        })
    }

    /// gcloud's `CLOUDSDK_API_ENDPOINT_OVERRIDES_{CONTAINER,IAM,CLOUDRESOURCEMANAGER,
    /// SERVICEUSAGE,IAMCREDENTIALS,STS}`; unset or empty variables keep the Google
    /// default. Values must be `http(s)://` URLs; a missing trailing `/` is added
    /// so a path prefix is kept when `v1/...` is appended.
    pub fn from_env_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, GcpError> {
        let mut urls = Vec::with_capacity(APIS.len());
        for (_, suffix, default) in APIS {
            let var = override_var(suffix);
            let url = match get(&var).filter(|v| !v.trim().is_empty()) {
                Some(value) => normalize(value.trim(), &var)?,
                None => normalize(default, "default endpoint")?,
            };
            urls.push(url);
        }
        let mut it = urls.into_iter();
        let mut next = || {
            it.next()
                .ok_or_else(|| GcpError::Config("endpoint table".into()))
        };
        Ok(Self {
            container: next()?,
            iam: next()?,
            crm: next()?,
            serviceusage: next()?,
            iamcredentials: next()?,
            sts: next()?,
        })
    }
}

fn normalize(value: &str, what: &str) -> Result<Url, GcpError> {
    let mut url =
        Url::parse(value).map_err(|e| GcpError::Config(format!("{what}: {value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(GcpError::Config(format!(
            "{what}: {value:?} is not an http(s) URL"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(GcpError::Config(format!(
            "{what}: {value:?} must not carry a query or fragment"
        )));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let g = Endpoints::google();
        assert_eq!(g.container.as_str(), "https://container.googleapis.com/");
        assert_eq!(
            g.crm.as_str(),
            "https://cloudresourcemanager.googleapis.com/"
        );
        let e = Endpoints::from_env_vars(|k| match k {
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_CONTAINER" => {
                Some("http://127.0.0.1:8080/container".into())
            }
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM" => Some("http://127.0.0.1:8080/iam/".into()),
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_STS" => Some("".into()),
            _ => None,
        })
        .expect("valid");
        assert_eq!(e.container.as_str(), "http://127.0.0.1:8080/container/");
        assert_eq!(
            e.container.join("v1/projects").expect("join").as_str(),
            "http://127.0.0.1:8080/container/v1/projects"
        );
        assert_eq!(e.iam.as_str(), "http://127.0.0.1:8080/iam/");
        assert_eq!(e.sts.as_str(), "https://sts.googleapis.com/");
        let bad = Endpoints::from_env_vars(|k| {
            (k == "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM").then(|| "ftp://x/".to_string())
        });
        assert!(matches!(bad, Err(GcpError::Config(m)) if m.contains("OVERRIDES_IAM")));
    }

    #[test]
    fn all_under_base() {
        let e =
            Endpoints::all_under(&Url::parse("http://127.0.0.1:9/x").expect("url")).expect("valid");
        assert_eq!(e.crm.as_str(), "http://127.0.0.1:9/x/cloudresourcemanager/");
    }
}
