//! The command line: clap types, settings, dispatch.
