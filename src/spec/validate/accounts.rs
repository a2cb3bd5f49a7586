//! The `serviceAccounts` section: each Google service account's project, id,
//! display name and description, declared once per project.

use std::collections::BTreeSet;

use super::{AccountInfo, Ctx, Declared, MAX_DESCRIPTION, MAX_DISPLAY_NAME, MAX_ITEMS, PROJECT_ID};
use crate::spec::model::Gsa;
use crate::spec::names;
use crate::spec::raw::{RawSpec, Sp};

pub(super) fn validate_accounts<'a>(
    cx: &mut Ctx,
    raw: &'a RawSpec,
    default_project: Option<&'a Sp<String>>,
    seen: &mut Declared<'a>,
) -> (Vec<Gsa>, Vec<AccountInfo<'a>>) {
    let mut out = Vec::new();
    let mut infos = Vec::new();
    if let Some(extra) = raw.service_accounts.get(MAX_ITEMS) {
        cx.too_many("service accounts", MAX_ITEMS, extra.span());
    }
    for item in raw.service_accounts.iter().take(MAX_ITEMS) {
        let a = &item.value;
        cx.name(
            &a.name,
            "account id",
            "wi::spec::invalid_account_id",
            names::check_account_id,
        );
        let project = cx.or_default(a.project.as_ref(), default_project, PROJECT_ID, |cx| {
            cx.new_problem(
                "wi::spec::missing_project",
                format!("service account `{}` has no project", a.name.value),
            )
            .label(a.name.span(), "no `project` here and no `defaults.project`")
            .help("set `project` on the account, or `defaults.project`")
        });
        if let Some(d) = &a.display_name
            && d.value.chars().count() > MAX_DISPLAY_NAME
        {
            let p = cx
                .new_problem("wi::spec::invalid_display_name", "display name is too long")
                .label(d.span(), format!("{} characters", d.value.chars().count()))
                .help(format!("IAM accepts at most {MAX_DISPLAY_NAME} characters"));
            cx.push(p);
        }
        if let Some(d) = &a.description
            && d.value.chars().count() > MAX_DESCRIPTION
        {
            let p = cx
                .new_problem("wi::spec::invalid_description", "description is too long")
                .label(d.span(), format!("{} characters", d.value.chars().count()))
                .help(format!(
                    "at most {MAX_DESCRIPTION} characters: IAM accepts 256 and wi adds its ownership marker"
                ));
            cx.push(p);
        }
        let mut roles = BTreeSet::new();
        if let Some(list) = &a.roles {
            for r in cx.list(list, "roles") {
                if cx.name(r, "role", "wi::spec::invalid_role", names::check_role) {
                    roles.insert(r.value.clone());
                }
            }
        }
        let duplicate = cx.first_declaration(
            seen,
            &project,
            &a.name,
            ("service account", "wi::spec::duplicate_account", None),
        );
        if duplicate.is_none() {
            infos.push(AccountInfo {
                file: cx.cur,
                project: project.clone(),
                name: &a.name,
                owner: cx.owner().clone(),
            });
        }
        out.push(Gsa {
            project,
            account_id: a.name.value.clone(),
            display_name: a.display_name.as_ref().map(|d| d.value.clone()),
            description: a.description.as_ref().map(|d| d.value.clone()),
            roles: roles.into_iter().collect(),
            adopt: a.adopt.as_ref().is_some_and(|b| b.value),
            owner: cx.owner().clone(),
            origin: cx.origin(a.name.span()),
        });
    }
    (out, infos)
}
