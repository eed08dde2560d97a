//! The floor as a server (`--serve`), which the bench asks for a few
//! timings of a figure right before each criterion sample.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use super::{in_memory, parse, FloorError, Line};

/// The floor as a server (`--serve`): asked for `n` timings of one figure at
/// a time, so that the bench can interleave it with criterion's samples.
/// Dropping it closes its input, which ends it, and reaps it.
pub struct Server {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Server {
    /// Starts the embedded floor `exe` with `args` and `--serve`.
    pub fn start(exe: &[u8], args: &[String]) -> Result<Server, FloorError> {
        let (file, mut command) = in_memory(exe)?;
        let mut child = command.args(args).arg("--serve").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        drop(file);
        let (input, output) = (child.stdin.take(), child.stdout.take().map(BufReader::new));
        let output = output.ok_or_else(|| FloorError::Parse { line: 0, why: "no standard output".into() })?;
        let mut server = Server { child, input, output };
        // The header line.
        server.answer()?;
        Ok(server)
    }

    fn answer(&mut self) -> Result<String, FloorError> {
        let mut line = String::new();
        if self.output.read_line(&mut line)? == 0 {
            let status = self.child.wait()?;
            return Err(FloorError::Failed { status, stderr: "the floor server ended".into() });
        }
        Ok(line)
    }

    /// `n` timings of figure `id`: a measured line, or a skipped one (also
    /// for an id the floor does not know).
    pub fn ask(&mut self, id: &str, n: u64) -> Result<Line, FloorError> {
        if id.contains(char::is_whitespace) || n < 2 {
            return Err(FloorError::Parse { line: 0, why: format!("bad request {id:?} {n}") });
        }
        let input = self.input.as_mut().ok_or_else(|| FloorError::Parse { line: 0, why: "the server's input is closed".into() })?;
        writeln!(input, "{id} {n}")?;
        input.flush()?;
        let text = self.answer()?;
        match parse(&text)?.as_slice() {
            [line] if line.id() == id => Ok(line.clone()),
            _ => Err(FloorError::Parse { line: 1, why: format!("answer to {id:?} is {text:?}") }),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.input.take());
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            // End-of-file ends it; a stuck one is killed.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
