//! Snapshot tests of rendered plans (human, JSON, Markdown) and apply
//! summaries. The plans are the planner's, for the quickstart world in the
//! situations of the shared fixtures (`harness::fixtures`).

use std::time::Duration;

use crate::harness::fixtures as fx;
use wi::apply::{ApplyResult, StepOutcome};
use wi::plan::{Action, Plan};
use wi::render::{self, Style};

fn all_plans() -> Vec<(&'static str, Plan)> {
    vec![
        ("create_everything", fx::create_everything()),
        ("partial_drift", fx::partial_drift()),
        ("foreign_members", fx::foreign_members()),
        ("removal", fx::removal()),
        ("no_changes", fx::no_changes()),
        ("structured_values", fx::structured_values()),
    ]
}

fn plain(plan: &Plan) -> String {
    render::human(plan, &Style::PLAIN)
}

#[test]
fn human_create_everything() {
    insta::assert_snapshot!(plain(&fx::create_everything()));
}

#[test]
fn human_partial_drift() {
    insta::assert_snapshot!(plain(&fx::partial_drift()));
}

#[test]
fn human_foreign_members() {
    insta::assert_snapshot!(plain(&fx::foreign_members()));
}

#[test]
fn human_removal() {
    insta::assert_snapshot!(plain(&fx::removal()));
}

#[test]
fn human_no_changes() {
    insta::assert_snapshot!(plain(&fx::no_changes()));
}

#[test]
fn human_structured_values() {
    insta::assert_snapshot!(plain(&fx::structured_values()));
}

#[test]
fn human_removal_coloured() {
    insta::assert_snapshot!(render::human(&fx::removal(), &Style::COLOR));
}

#[test]
fn plain_output_has_no_escape_codes_and_colour_output_has_them() {
    for (name, plan) in all_plans() {
        let text = plain(&plan);
        assert!(!text.contains('\u{1b}'), "{name} has escape codes");
        let coloured = render::human(&plan, &Style::COLOR);
        assert!(coloured.contains("\u{1b}["), "{name} has no colour");
    }
}

#[test]
fn colour_only_adds_escapes() {
    // Stripping the escapes from the coloured plan gives the plain plan.
    for (name, plan) in all_plans() {
        let coloured = render::human(&plan, &Style::COLOR);
        let mut stripped = String::new();
        let mut chars = coloured.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for d in chars.by_ref() {
                    if d == 'm' {
                        break;
                    }
                }
            } else {
                stripped.push(c);
            }
        }
        assert_eq!(stripped, plain(&plan), "{name}");
    }
}

#[test]
fn no_op_changes_are_hidden_and_every_actionable_change_is_shown() {
    for (name, plan) in all_plans() {
        let text = plain(&plan);
        for c in &plan.changes {
            let line = format!("  # {} ", c.address);
            match c.action {
                Action::NoOp => assert!(!text.contains(&line), "{name}: {} shown", c.address),
                _ => assert_eq!(text.matches(&line).count(), 1, "{name}: {}", c.address),
            }
        }
    }
}

#[test]
fn legend_lists_only_the_actions_present() {
    let removal = plain(&fx::removal());
    assert!(!removal.contains("  + create\n"));
    assert!(removal.contains("  ~ update in-place\n"));
    assert!(removal.contains("  - destroy\n"));
    let create = plain(&fx::create_everything());
    assert!(create.contains("  + create\n  ~ update in-place\n\n"));
    assert!(!create.contains("  - destroy\n"));
}

#[test]
fn summary_line_counts_actions() {
    assert!(
        plain(&fx::create_everything()).contains("\nPlan: 15 to add, 5 to change, 0 to destroy.\n")
    );
    assert!(plain(&fx::removal()).contains("\nPlan: 0 to add, 1 to change, 2 to destroy.\n"));
    let none = plain(&fx::no_changes());
    assert!(none.starts_with("No changes. Your infrastructure matches the spec.\n"));
    assert!(!none.contains("Plan:"));
}

#[test]
fn removed_member_carries_the_revocation_warning_under_it() {
    let text = plain(&fx::removal());
    let addr = fx::wi_member(fx::APP, "payments", "worker").address();
    let at = text
        .find(&format!("  # {addr} will be destroyed"))
        .expect("change shown");
    let block = &text[at..];
    let end = block.find("\n    }\n").expect("block closes");
    assert!(
        block[..end].contains(
            "  # Warning: a removed binding keeps working for tokens already issued, for up to 30 minutes"
        )
    );
    assert!(block[..end].contains("-> null"));
}

#[test]
fn json_create_everything() {
    insta::assert_json_snapshot!(render::json(&fx::create_everything()), {".wi_version" => "[version]", ".checksum" => "[checksum]"});
}

#[test]
fn json_removal() {
    insta::assert_json_snapshot!(render::json(&fx::removal()), {".wi_version" => "[version]", ".checksum" => "[checksum]"});
}

#[test]
fn json_no_changes() {
    insta::assert_json_snapshot!(render::json(&fx::no_changes()), {".wi_version" => "[version]", ".checksum" => "[checksum]"});
}

#[test]
fn json_is_versioned_complete_and_ordered() {
    for (name, plan) in all_plans() {
        let v = render::json(&plan);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "format_version",
                "wi_version",
                "spec_digest",
                "resource_changes",
                "warnings",
                "summary",
                "has_changes",
                "fingerprints",
                "checksum"
            ],
            "{name}"
        );
        assert_eq!(v["format_version"], wi::plan::FORMAT_VERSION);
        assert_eq!(v["has_changes"], plan.has_changes());
        let rc = v["resource_changes"].as_array().unwrap();
        // No-ops are kept, as in Terraform.
        assert_eq!(rc.len(), plan.changes.len(), "{name}");
        for (c, j) in plan.changes.iter().zip(rc) {
            assert_eq!(j["address"], c.address.as_str());
            assert_eq!(j["change"]["actions"][0], render::actions(c.action)[0]);
            assert_eq!(j["action_reason"], c.reason.code.as_str());
        }
        // Same plan, same bytes.
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            serde_json::to_string(&render::json(&plan)).unwrap()
        );
    }
}

#[test]
fn markdown_removal() {
    insta::assert_snapshot!(render::markdown(
        &fx::removal(),
        render::GITHUB_COMMENT_MAX_BYTES
    ));
}

#[test]
fn markdown_no_changes() {
    insta::assert_snapshot!(render::markdown(
        &fx::no_changes(),
        render::GITHUB_COMMENT_MAX_BYTES
    ));
}

#[test]
fn markdown_truncated_keeps_the_table_and_says_so() {
    let plan = fx::create_everything();
    let full = render::markdown(&plan, usize::MAX);
    let cut = render::markdown(&plan, 2500);
    assert!(full.len() > 2500);
    assert!(cut.len() <= 2500);
    assert!(cut.contains("output truncated to fit 2500 bytes"), "{cut}");
    insta::assert_snapshot!(cut);
}

#[test]
fn markdown_never_exceeds_the_budget() {
    let plan = fx::create_everything();
    let full_len = render::markdown(&plan, usize::MAX).len();
    for budget in (0..full_len + 10).step_by(53) {
        let md = render::markdown(&plan, budget);
        assert!(md.len() <= budget, "budget {budget}: {} bytes", md.len());
        if budget >= full_len {
            assert!(!md.contains("truncated"));
        }
    }
}

fn report_failed() -> ApplyResult {
    let step = |a: &str, action, secs| StepOutcome {
        address: a.into(),
        action,
        elapsed: Duration::from_secs(secs),
    };
    ApplyResult {
        done: vec![
            step("project_service[\"wi-demo/iamcredentials.googleapis.com\"]", Action::Create, 4),
            step("google_service_account[\"wi-demo/app\"]", Action::Create, 2),
            step("cluster[\"wi-demo/us-central1/alpha\"]", Action::Update, 312),
        ],
        failed: vec![(
            "service_account_iam_member[\"app@wi-demo.iam.gserviceaccount.com/roles/iam.workloadIdentityUser/serviceAccount:wi-demo.svc.id.goog[payments/api]\"]".into(),
            "Identity Pool does not exist (wi-demo.svc.id.goog).\nGave up after 5 attempts over 2m0s.".into(),
        )],
        skipped: vec![(
            "kubernetes_service_account[\"wi-demo/us-central1/alpha/payments/api\"]".into(),
            "depends on a change that failed".into(),
        )],
        interrupted: false,
    }
}

#[test]
fn apply_summary_complete() {
    let mut r = report_failed();
    r.failed.clear();
    r.skipped.clear();
    r.done.push(StepOutcome {
        address: "service_account_iam_member[\"x\"]".into(),
        action: Action::Delete,
        elapsed: Duration::from_secs(1),
    });
    assert_eq!(
        render::apply_summary(&r, &Style::PLAIN),
        "Apply complete! Resources: 2 added, 1 changed, 1 destroyed.\n"
    );
}

#[test]
fn apply_summary_failed() {
    insta::assert_snapshot!(render::apply_summary(&report_failed(), &Style::PLAIN));
}

#[test]
fn apply_summary_interrupted() {
    let mut r = report_failed();
    r.failed.clear();
    r.interrupted = true;
    let text = render::apply_summary(&r, &Style::PLAIN);
    assert!(
        text.starts_with(
            "Apply interrupted: 2 added, 1 changed, 0 destroyed; 0 failed, 1 skipped.\n"
        ),
        "{text}"
    );
    assert!(text.contains("wi was interrupted"));
}

#[test]
fn markdown_truncation_keeps_every_destroy() {
    let mut plan = fx::create_everything();
    let removal = fx::removal();
    plan.changes.extend(removal.changes);
    plan.changes.sort_by_key(|c| c.resource.sort_key());
    let md = render::markdown(&plan, 2000);
    assert!(md.len() <= 2000);
    assert!(md.contains("(destroys first)"), "{md}");
    for c in plan.changes.iter().filter(|c| c.action == Action::Delete) {
        assert!(
            md.contains(&format!("`{}`", c.address)),
            "{} missing",
            c.address
        );
    }
}

#[test]
fn waits_across_groups_are_shown() {
    let text = plain(&fx::create_everything());
    let member = fx::wi_member(fx::APP, "payments", "api").address();
    let at = text.find(&format!("  # {member} will be created")).unwrap();
    let block = &text[at..at + text[at..].find("\n    }\n").unwrap()];
    assert!(
        block.contains("  # (waits for cluster[\"wi-demo/us-central1-a/alpha\"])"),
        "{block}"
    );
    // The account is in the same group, shown before it: no comment.
    assert!(
        !block.contains("waits for google_service_account"),
        "{block}"
    );
}

#[test]
fn not_saved_note_is_plain_without_colour() {
    let note = render::not_saved_note(&Style::PLAIN);
    assert!(note.contains("Note: You didn't use the --out option"));
    assert!(!note.contains('\u{1b}'));
}

#[test]
fn odd_values_render_without_panicking() {
    use serde_json::json;
    let odd = [
        json!(""),
        json!("line\nbreak \"quoted\" \u{1b}[31m"),
        json!([]),
        json!({}),
        json!([[[]], {"": null}]),
        json!({"ключ": {"nested": {"deeper": [1, {"x": "y"}]}}}),
        json!(1.5e300),
        json!(null),
    ];
    for (i, before) in odd.iter().enumerate() {
        for after in &odd {
            for action in [Action::Create, Action::Update, Action::Delete] {
                let plan = fx::plan(
                    vec![fx::change(
                        fx::gsa("odd"),
                        action,
                        Some(fx::attrs(&[("v", before.clone()), ("name", json!("odd"))])),
                        Some(fx::attrs(&[("v", after.clone()), ("name", json!("odd"))])),
                        "drift",
                        "",
                    )],
                    Vec::new(),
                );
                let text = plain(&plan);
                assert!(text.contains("Plan: "), "{i}: {text}");
                // Values are JSON literals: a control character in a value is
                // escaped, never emitted raw.
                assert!(!text.contains('\u{1b}'), "{i}: {text}");
                let _ = render::markdown(&plan, 300);
            }
        }
    }
}

#[test]
fn escape_sequences_from_live_data_are_defused() {
    let mut plan = fx::removal();
    let shown = plan
        .changes
        .iter_mut()
        .find(|c| c.action != Action::NoOp)
        .expect("an actionable change");
    shown.reason.message = "description was \u{1b}[2Jwiped".into();
    plan.warnings[0].message = "evil \u{1b}]0;title\u{7} text".into();
    let text = plain(&plan);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text}"
    );
    assert!(text.contains("\\u{1b}[2Jwiped"));
    let mut report = ApplyResult::default();
    report
        .failed
        .push(("a".into(), "boom \u{1b}[31m\nsecond line".into()));
    let summary = render::apply_summary(&report, &Style::PLAIN);
    assert!(!summary.contains('\u{1b}'));
    assert!(summary.contains("      second line"));
}
