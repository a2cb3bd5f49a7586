//! Kubernetes clients for the clusters `wi` manages, built from the GKE
//! cluster itself (endpoint, CA, Google token) or a kubeconfig context.
