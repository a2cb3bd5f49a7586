//! The kubeconfig the emulator keeps current: one context per emulated
//! cluster, named and shaped exactly as `gcloud container clusters
//! get-credentials` writes it (exec plugin `gke-gcloud-auth-plugin`).

use std::fmt::Write;
use std::path::Path;

/// One cluster entry.
pub(crate) struct Entry {
    /// `gke_PROJECT_LOCATION_NAME`.
    pub name: String,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// base64 of the CA PEM.
    pub ca_data: String,
}

/// The `current-context` of an existing kubeconfig (gcloud may have set it).
pub(crate) fn current_context(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("current-context:"))
        .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|v| !v.is_empty())
}

/// Renders the kubeconfig YAML; keeps `current` when it still names a context.
pub(crate) fn render(entries: &[Entry], current: Option<&str>) -> String {
    let mut out = String::from("apiVersion: v1\n");
    if entries.is_empty() {
        out.push_str("clusters: []\ncontexts: []\n");
    } else {
        out.push_str("clusters:\n");
        for e in entries {
            let _ = write!(
                out,
                "- cluster:\n    certificate-authority-data: {}\n    server: {}\n  name: {}\n",
                e.ca_data, e.server, e.name
            );
        }
        out.push_str("contexts:\n");
        for e in entries {
            let _ = write!(
                out,
                "- context:\n    cluster: {n}\n    user: {n}\n  name: {n}\n",
                n = e.name
            );
        }
    }
    let current = current
        .filter(|c| entries.iter().any(|e| e.name == *c))
        .map(str::to_string)
        .or_else(|| entries.first().map(|e| e.name.clone()));
    let _ = writeln!(
        out,
        "current-context: {}",
        current.unwrap_or_else(|| "\"\"".into())
    );
    out.push_str("kind: Config\npreferences: {}\n");
    if entries.is_empty() {
        out.push_str("users: []\n");
    } else {
        out.push_str("users:\n");
        for e in entries {
            let _ = write!(
                out,
                "- name: {}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      args: null\n      command: gke-gcloud-auth-plugin\n      env: null\n      installHint: Install gke-gcloud-auth-plugin for use with kubectl by following\n        https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin\n      interactiveMode: IfAvailable\n      provideClusterInfo: true\n",
                e.name
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_gcloud_shape_and_keeps_current_context() {
        let entries = vec![
            Entry {
                name: "gke_p_us-central1-a_a".into(),
                server: "https://127.0.0.1:1".into(),
                ca_data: "Q0E=".into(),
            },
            Entry {
                name: "gke_p_europe-west1-b_b".into(),
                server: "https://127.0.0.1:2".into(),
                ca_data: "Q0E=".into(),
            },
        ];
        let text = render(&entries, Some("gke_p_europe-west1-b_b"));
        assert!(text.contains("current-context: gke_p_europe-west1-b_b\n"));
        assert!(text.contains("command: gke-gcloud-auth-plugin"));
        assert!(text.contains("provideClusterInfo: true"));
        let text = render(&entries, Some("gone"));
        assert!(text.contains("current-context: gke_p_us-central1-a_a\n"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, text).unwrap();
        assert_eq!(
            current_context(&p).as_deref(),
            Some("gke_p_us-central1-a_a")
        );
    }
}
