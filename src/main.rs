//! The `mcpsiem` command line: parses the flags, loads the configuration and dispatches.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use mcpsiem::cli::{Cli, Command, ConfigCommand};
use mcpsiem::commands;
use mcpsiem::config::{Config, LogFormat};
use mcpsiem::output::print_json_line;
use mcpsiem_event::Timestamp;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Test builds only: failpoints from FAILPOINTS (docs/failpoints.md).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = Cli::parse();
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let (config, sources) = Config::load(cli.config.as_deref(), &cli.overrides)?;
    init_logging(&config);
    let seconds = |s: Option<f64>| s.map(Duration::from_secs_f64);
    match cli.command {
        Command::Config(ConfigCommand::Show) => {
            match &sources.file {
                Some(file) => println!("# file: {}", file.display()),
                None => println!("# file: none (defaults, environment and flags only)"),
            }
            print!("{}", config.to_masked_toml());
            Ok(())
        }
        Command::Gen(args) => commands::generate::generate(&config, args),
        Command::Schema { arrow: true } => {
            println!("{:#?}", mcpsiem_event::schema::arrow_schema());
            Ok(())
        }
        Command::Schema { arrow: false } => {
            print!("{}", mcpsiem_event::schema::markdown_field_table());
            Ok(())
        }
        Command::Ingest { stop_when_idle, stop_after_records } => {
            print_json_line(&commands::ingest::run_ingest(&config, seconds(stop_when_idle), stop_after_records)?)
        }
        Command::Compact { settle_seconds } => {
            print_json_line(&commands::ingest::run_compact(&config, settle_seconds)?)
        }
        Command::Detect { replay: true, from, to, .. } => {
            let parse = |name: &str, value: Option<String>| -> Result<Timestamp> {
                let value = value.with_context(|| format!("--{name} is required with --replay"))?;
                Timestamp::parse(&value).with_context(|| format!("--{name} {value}"))
            };
            let summary = commands::detect::run_replay(&config, parse("from", from)?, parse("to", to)?)?;
            // stdout carries the alerts; the summary goes to stderr.
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Detect { stop_when_idle, .. } => {
            print_json_line(&commands::detect::run_detect(&config, seconds(stop_when_idle))?)
        }
        Command::Rules(command) => command.run(&config),
        Command::Serve => commands::query::run_serve(&config),
        Command::Query(args) => args.run(&config),
        Command::Apikey(command) => {
            command.run();
            Ok(())
        }
        Command::Collect(command) => command.run(&config),
        Command::Alerts(command) => command.run(&config),
        Command::Silence(command) => command.run(&config),
        Command::Incidents(command) => command.run(&config),
        Command::Up(args) => commands::up::run_up(
            &config,
            &commands::up::UpOptions {
                data_dir: args.data_dir,
                broker_port: args.broker_port,
                demo: args.demo,
                demo_events: args.demo_events,
                demo_rate: args.demo_rate,
            },
        ),
        Command::Export(args) => args.run(&config),
        Command::Keys(command) => command.run(),
        Command::Lake(command) => command.run(&config),
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
