//! The CLI client: tables for people, `--output json` for scripts.

pub mod cluster;
pub mod hostgroup;
pub mod iam;
pub mod instance;
pub mod lb;
pub mod logs;
pub mod misc;
pub mod service;
pub mod task;
pub mod taskdef;

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use serde_json::Value;

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub client: crate::client::ClientOpts,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// Prints `rows` as a table, or `raw` as JSON.
pub fn print(output: Output, raw: &Value, header: &[&str], rows: Vec<Vec<String>>) {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(raw).unwrap_or_else(|_| raw.to_string())
        ),
        Output::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
            for r in rows {
                t.add_row(r);
            }
            println!("{t}");
        }
    }
}

/// A JSON field as display text.
pub fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
