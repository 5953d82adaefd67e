//! Prints the kernels this build selects on this CPU and exits non-zero when a phone-class
//! build fell back to generic code (see the library's documentation).

use std::process::ExitCode;

use fruits_kernel_probe::KernelReport;

fn main() -> ExitCode {
    let report = KernelReport::gather();
    print!("{report}");
    match report.check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(fallback) => {
            eprintln!("kernel probe: {fallback}");
            ExitCode::FAILURE
        }
    }
}
