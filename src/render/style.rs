//! One colour decision for everything `wi` prints.
//!
//! The CLI decides once (stdout/stderr is a terminal, `NO_COLOR`,
//! `--no-color`) and hands a [`Style`] to every renderer; renderers never look
//! at the environment themselves. With `color: false` the output contains no
//! escape codes at all, which the tests check.

use owo_colors::{OwoColorize, Style as Paint};

use crate::plan::Action;

/// Whether rendered text carries ANSI colours and bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// `true` to emit ANSI escape codes.
    pub color: bool,
}

impl Style {
    /// No escape codes (pipes, files, `NO_COLOR`, `--no-color`, snapshots).
    pub const PLAIN: Style = Style { color: false };
    /// Colours and bold (a terminal that wants them).
    pub const COLOR: Style = Style { color: true };

    /// The one colour decision, as a pure function of what the CLI observed:
    /// colour only on a terminal, never when `NO_COLOR` is set to a non-empty
    /// value (<https://no-color.org>) or `--no-color` was given.
    pub(crate) fn decide(
        is_terminal: bool,
        no_color_env: Option<&str>,
        no_color_flag: bool,
    ) -> Style {
        let env_says_no = no_color_env.is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !env_says_no && !no_color_flag,
        }
    }

    fn paint(&self, text: &str, paint: Paint) -> String {
        if self.color {
            text.style(paint).to_string()
        } else {
            text.to_string()
        }
    }

    /// Bold (addresses, `Plan:`).
    pub(crate) fn bold(&self, text: &str) -> String {
        self.paint(text, Paint::new().bold())
    }

    /// Bold red (`destroyed`, `Apply failed`, `Error:`).
    pub(crate) fn bold_red(&self, text: &str) -> String {
        self.paint(text, Paint::new().bold().red())
    }

    /// Bold green (`No changes.`, `Apply complete!`).
    pub(crate) fn bold_green(&self, text: &str) -> String {
        self.paint(text, Paint::new().bold().green())
    }

    /// Green (additions).
    pub(crate) fn green(&self, text: &str) -> String {
        self.paint(text, Paint::new().green())
    }

    /// Red (removals).
    pub(crate) fn red(&self, text: &str) -> String {
        self.paint(text, Paint::new().red())
    }

    /// Yellow (in-place updates, `->`, warnings).
    pub(crate) fn yellow(&self, text: &str) -> String {
        self.paint(text, Paint::new().yellow())
    }

    /// Bold yellow (warning titles).
    pub(crate) fn bold_yellow(&self, text: &str) -> String {
        self.paint(text, Paint::new().bold().yellow())
    }

    /// Dark grey (`-> null`, `# (N unchanged attributes hidden)`).
    pub(crate) fn dim(&self, text: &str) -> String {
        self.paint(text, Paint::new().bright_black())
    }

    /// The coloured symbol of an action (`+` green, `~` yellow, `-` red).
    pub(crate) fn symbol(&self, action: Action) -> String {
        let sym = action.symbol();
        match action {
            Action::Create => self.green(sym),
            Action::Update => self.yellow(sym),
            Action::Delete => self.red(sym),
            Action::NoOp => sym.to_string(),
        }
    }
}

pub(crate) use super::sanitize::sanitize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_has_no_escapes_and_color_has_them() {
        assert_eq!(Style::PLAIN.bold_red("x"), "x");
        assert_eq!(Style::PLAIN.symbol(Action::Create), "+");
        let coloured = Style::COLOR.bold_red("x");
        assert!(coloured.contains('\u{1b}'), "{coloured:?}");
        assert!(coloured.contains('x'));
    }

    #[test]
    fn decide_honours_terminal_no_color_and_flag() {
        assert!(Style::decide(true, None, false).color);
        assert!(Style::decide(true, Some(""), false).color);
        assert!(!Style::decide(true, Some("1"), false).color);
        assert!(!Style::decide(true, None, true).color);
        assert!(!Style::decide(false, None, false).color);
    }
}
