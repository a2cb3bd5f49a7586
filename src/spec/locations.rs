//! The Google Cloud locations a cluster may name: every public region and
//! its zones, as `gcloud compute regions list` / `zones list` report them
//! (checked against Google's published list of regions and zones). GKE
//! accepts a region (a regional cluster) or one of its zones (a zonal
//! cluster) and nothing else, so neither does `wi`.
//!
//! Google adds regions a few times a year: a new one goes here, in order.

/// Every region and the letters of its zones.
pub const REGIONS: &[(&str, &[char])] = &[
    ("africa-south1", &['a', 'b', 'c']),
    ("asia-east1", &['a', 'b', 'c']),
    ("asia-east2", &['a', 'b', 'c']),
    ("asia-northeast1", &['a', 'b', 'c']),
    ("asia-northeast2", &['a', 'b', 'c']),
    ("asia-northeast3", &['a', 'b', 'c']),
    ("asia-south1", &['a', 'b', 'c']),
    ("asia-south2", &['a', 'b', 'c']),
    ("asia-southeast1", &['a', 'b', 'c']),
    ("asia-southeast2", &['a', 'b', 'c']),
    ("asia-southeast3", &['a', 'b', 'c']),
    ("australia-southeast1", &['a', 'b', 'c']),
    ("australia-southeast2", &['a', 'b', 'c']),
    ("europe-central2", &['a', 'b', 'c']),
    ("europe-north1", &['a', 'b', 'c']),
    ("europe-north2", &['a', 'b', 'c']),
    ("europe-southwest1", &['a', 'b', 'c']),
    ("europe-west1", &['b', 'c', 'd']),
    ("europe-west2", &['a', 'b', 'c']),
    ("europe-west3", &['a', 'b', 'c']),
    ("europe-west4", &['a', 'b', 'c']),
    ("europe-west6", &['a', 'b', 'c']),
    ("europe-west8", &['a', 'b', 'c']),
    ("europe-west9", &['a', 'b', 'c']),
    ("europe-west10", &['a', 'b', 'c']),
    ("europe-west12", &['a', 'b', 'c']),
    ("me-central1", &['a', 'b', 'c']),
    ("me-central2", &['a', 'b', 'c']),
    ("me-west1", &['a', 'b', 'c']),
    ("northamerica-northeast1", &['a', 'b', 'c']),
    ("northamerica-northeast2", &['a', 'b', 'c']),
    ("northamerica-south1", &['a', 'b', 'c']),
    ("southamerica-east1", &['a', 'b', 'c']),
    ("southamerica-west1", &['a', 'b', 'c']),
    ("us-central1", &['a', 'b', 'c', 'f']),
    ("us-east1", &['b', 'c', 'd']),
    ("us-east4", &['a', 'b', 'c']),
    ("us-east5", &['a', 'b', 'c']),
    ("us-south1", &['a', 'b', 'c']),
    ("us-west1", &['a', 'b', 'c']),
    ("us-west2", &['a', 'b', 'c']),
    ("us-west3", &['a', 'b', 'c']),
    ("us-west4", &['a', 'b', 'c']),
];

/// The zone letters of `region`, when it is a region.
fn zones_of(region: &str) -> Option<&'static [char]> {
    REGIONS.iter().find(|(r, _)| *r == region).map(|(_, z)| *z)
}

/// True for a region of [`REGIONS`].
pub fn is_known_region(s: &str) -> bool {
    zones_of(s).is_some()
}

/// True for a zone of a region of [`REGIONS`].
pub fn is_known_zone(s: &str) -> bool {
    let Some((region, letter)) = s.rsplit_once('-') else {
        return false;
    };
    let mut chars = letter.chars();
    match (chars.next(), chars.next(), zones_of(region)) {
        (Some(c), None, Some(zones)) => zones.contains(&c),
        _ => false,
    }
}

/// The known location closest to `s`, when one is close enough to be a typo.
pub fn suggest_location(s: &str) -> Option<String> {
    let mut all: Vec<String> = Vec::new();
    for (region, zones) in REGIONS {
        all.push((*region).to_owned());
        all.extend(zones.iter().map(|z| format!("{region}-{z}")));
    }
    let candidates: Vec<&str> = all.iter().map(String::as_str).collect();
    if let Some(c) = super::suggest::closest(s, &candidates) {
        return Some(c.to_owned());
    }
    // A zone letter the region does not have: `us-east1-a` → `us-east1-b`.
    let (region, _) = s.rsplit_once('-')?;
    let zones = zones_of(region)?;
    zones.first().map(|z| format!("{region}-{z}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_and_zones() {
        assert!(is_known_region("us-central1"));
        assert!(is_known_zone("us-central1-f"));
        assert!(!is_known_zone("us-central1-d"));
        assert!(is_known_zone("europe-west1-d"));
        assert!(!is_known_zone("europe-west1-a"));
        assert!(!is_known_region("mars-north9"));
        assert!(!is_known_zone("mars-north9-z"));
        assert!(!is_known_zone("us-central1-ab"));
        assert_eq!(
            suggest_location("us-centrl1").as_deref(),
            Some("us-central1")
        );
        assert_eq!(
            suggest_location("us-east1-a").as_deref(),
            Some("us-east1-b")
        );
        assert_eq!(suggest_location("mars-north9-z"), None);
        let mut sorted = REGIONS.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        assert_eq!(sorted.len(), REGIONS.len());
    }
}
