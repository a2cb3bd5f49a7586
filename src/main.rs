fn main() -> std::process::ExitCode {
    wi::cli::main()
}
