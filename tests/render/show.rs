//! `wi show PLANFILE [--json]` renders a saved plan again, without a spec or
//! credentials: the text is what `wi plan` printed, the JSON is the saved
//! document itself; `wi schema --plan` prints the committed plan schema.

use crate::harness::command::wi_offline;
use crate::harness::fixtures as fx;
use wi::plan::file;
use wi::render::{self, Style};

fn saved(plan: &wi::plan::Plan) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pr.plan");
    file::write(plan, &path).unwrap();
    let path = path.to_str().unwrap().to_string();
    (dir, path)
}

#[tokio::test]
async fn show_renders_a_saved_plan_as_plan_printed_it() {
    let plan = fx::removal();
    let (_dir, path) = saved(&plan);
    let out = wi_offline(&["show", &path]).await.expect(0);
    assert_eq!(out.stdout, render::human(&plan, &Style::PLAIN));
    assert_output_snapshot!("show_text", out);
}

#[tokio::test]
async fn show_json_prints_the_saved_document() {
    let plan = fx::create_everything();
    let (_dir, path) = saved(&plan);
    let out = wi_offline(&["show", "--json", &path]).await.expect(0);
    assert_eq!(
        out.stdout.as_bytes(),
        &file::encode(&plan).unwrap()[..],
        "`wi show --json` and the saved file are the same text"
    );
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(value, render::json(&plan));
    let md = wi_offline(&["show", "--format", "markdown", &path])
        .await
        .expect(0);
    assert!(md.stdout.starts_with("#"), "{}", md.stdout);
}

#[tokio::test]
async fn show_refuses_a_tampered_plan_and_a_missing_file() {
    let (dir, path) = saved(&fx::create_everything());
    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = text.replacen("[payments/api]", "[payments/apj]", 1);
    assert_ne!(tampered, text);
    std::fs::write(&path, tampered).unwrap();
    let out = wi_offline(&["show", &path]).await.expect(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_output_snapshot!("show_tampered", out);
    let missing = dir.path().join("absent.plan");
    let out = wi_offline(&["show", missing.to_str().unwrap()])
        .await
        .expect(1);
    assert!(
        out.stderr.contains("cannot read plan file"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn schema_plan_prints_the_committed_plan_schema() {
    let out = wi_offline(&["schema", "--plan"]).await.expect(0);
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json"),
    )
    .unwrap();
    assert_eq!(out.stdout, committed);
    assert!(out.stderr.is_empty(), "{}", out.stderr);
}
