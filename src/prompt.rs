//! Questions to the operator, answered on standard input exactly as the old
//! tool asked them, so `yes | tapeop assign` keeps working; `-y` answers yes.
//! An end of input with no answer aborts (exit 1) instead of hanging.

use std::io::BufRead;

use anyhow::Result;

use crate::exit_codes::{Exit, ExitCode};

/// Asks questions on stdout and reads answers from stdin.
#[derive(Debug, Clone, Copy)]
pub struct Prompter {
    /// Answer yes to every yes/no question without reading stdin.
    pub yes: bool,
}

impl Prompter {
    /// Ask `question  [yn] `; true for an answer starting with y/Y.
    pub fn yes_no(&self, question: &str) -> Result<bool> {
        print!("{question}  [yn] ");
        if self.yes {
            println!("y");
            return Ok(true);
        }
        let answer = read_answer(question)?;
        Ok(answer.trim_start().starts_with(['y', 'Y']))
    }

    /// Ask a yes/no question; a "no" aborts with exit 1 and changes nothing.
    pub fn proceed(&self, question: &str) -> Result<()> {
        if self.yes_no(question)? {
            Ok(())
        } else {
            Err(Exit::error(ExitCode::Failure, "aborted: nothing was changed"))
        }
    }

    /// Ask for free text; with `-y` the answer is empty.
    pub fn text(&self, question: &str) -> Result<String> {
        print!("{question} ");
        if self.yes {
            println!();
            return Ok(String::new());
        }
        Ok(read_answer(question)?.trim().to_string())
    }
}

fn read_answer(question: &str) -> Result<String> {
    crate::out::flush();
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        println!();
        return Err(Exit::error(
            ExitCode::Failure,
            format!(
                "no answer on standard input to {:?}: answer it, or pass -y/--yes; nothing was changed",
                question.trim()
            ),
        ));
    }
    Ok(line)
}
