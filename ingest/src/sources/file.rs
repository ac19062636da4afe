//! File source: `.jsonl` / `.ndjson` / `.json` (JSON Lines) and `.csv`, each optionally `.gz`;
//! `-` is standard input.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::Record;
use crate::normalize;

/// The shape of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    JsonLines,
    Csv,
}

/// An input named on the command line.
#[derive(Debug, Clone)]
pub struct Input {
    /// The path as given (`-` for standard input).
    pub path: PathBuf,
    pub format: InputFormat,
    pub gzip: bool,
}

impl Input {
    /// Tells the format from the file name; `-` is JSON Lines on standard input unless
    /// `stdin_format` says otherwise.
    pub fn from_path(path: &Path, stdin_format: Option<InputFormat>) -> anyhow::Result<Input> {
        if path == Path::new("-") {
            return Ok(Input {
                path: path.to_path_buf(),
                format: stdin_format.unwrap_or(InputFormat::JsonLines),
                gzip: false,
            });
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let (stem, gzip) = match name.strip_suffix(".gz") {
            Some(s) => (s.to_string(), true),
            None => (name.clone(), false),
        };
        let format = if stem.ends_with(".csv") {
            InputFormat::Csv
        } else if stem.ends_with(".jsonl") || stem.ends_with(".ndjson") || stem.ends_with(".json") {
            InputFormat::JsonLines
        } else {
            anyhow::bail!(
                "{}: cannot tell the format from the name; name it .jsonl (JSON Lines) or .csv, optionally with .gz",
                path.display()
            )
        };
        if !path.exists() {
            anyhow::bail!("{}: no such file", path.display());
        }
        Ok(Input {
            path: path.to_path_buf(),
            format,
            gzip,
        })
    }

    /// How the source is named in messages and in the quarantine.
    pub fn display_name(&self) -> String {
        if self.path == Path::new("-") {
            "<stdin>".to_string()
        } else {
            self.path.display().to_string()
        }
    }

    /// Size in bytes on disk (for progress), if a regular file.
    pub fn size(&self) -> Option<u64> {
        std::fs::metadata(&self.path).ok().map(|m| m.len())
    }

    /// Opens the input; `on_bytes` is told how many raw (compressed) bytes were read.
    pub fn open(
        &self,
        on_bytes: impl FnMut(u64) + Send + 'static,
    ) -> io::Result<Box<dyn Iterator<Item = io::Result<Record>> + Send>> {
        let raw: Box<dyn Read + Send> =
            if self.path == Path::new("-") {
                Box::new(io::stdin())
            } else {
                Box::new(File::open(&self.path).map_err(|e| {
                    io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
                })?)
            };
        let counted = Counting {
            inner: raw,
            on_bytes: Box::new(on_bytes),
        };
        let reader: Box<dyn Read + Send> = if self.gzip {
            Box::new(MultiGzDecoder::new(BufReader::with_capacity(
                1 << 16,
                counted,
            )))
        } else {
            Box::new(counted)
        };
        let buffered = BufReader::with_capacity(1 << 16, reader);
        Ok(match self.format {
            InputFormat::JsonLines => Box::new(JsonLines {
                reader: buffered,
                line: 0,
                buf: Vec::with_capacity(1024),
            }),
            InputFormat::Csv => Box::new(CsvRows::new(buffered)),
        })
    }
}

struct Counting {
    inner: Box<dyn Read + Send>,
    on_bytes: Box<dyn FnMut(u64) + Send>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

struct JsonLines<R> {
    reader: R,
    line: u64,
    buf: Vec<u8>,
}

impl<R: BufRead> Iterator for JsonLines<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(e)),
            }
            self.line += 1;
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue; // a blank line is skipped (SPEC §2)
            }
            return Some(Ok(match std::str::from_utf8(&self.buf) {
                Ok(s) => Record {
                    line: self.line,
                    raw: s.to_string(),
                    parsed: normalize::from_json_line(s),
                },
                Err(e) => Record {
                    line: self.line,
                    raw: String::from_utf8_lossy(&self.buf).into_owned(),
                    parsed: Err(normalize::Reject {
                        field: "line",
                        reason: format!("not valid UTF-8 text ({e})"),
                    }),
                },
            }));
        }
    }
}

struct CsvRows<R: Read> {
    reader: csv::Reader<R>,
    headers: Option<Vec<String>>,
    record: csv::StringRecord,
    failed: bool,
}

impl<R: Read> CsvRows<R> {
    fn new(r: R) -> Self {
        CsvRows {
            reader: csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(r),
            headers: None,
            record: csv::StringRecord::new(),
            failed: false,
        }
    }
}

fn csv_text(rec: &csv::StringRecord) -> String {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let _ = w.write_record(rec);
    let mut s = String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default();
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    s
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    if let csv::ErrorKind::Io(_) = e.kind() {
                        self.failed = true;
                        return Some(Err(io::Error::other(e.to_string())));
                    }
                    // A row that is not UTF-8: quarantine it and read on.
                    return Some(Ok(Record {
                        line,
                        raw: String::new(),
                        parsed: Err(normalize::Reject {
                            field: "line",
                            reason: format!("unreadable CSV row ({e})"),
                        }),
                    }));
                }
            }
            let line = self.record.position().map(|p| p.line()).unwrap_or(0);
            if self.record.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let Some(headers) = &self.headers else {
                self.headers = Some(self.record.iter().map(|h| h.trim().to_string()).collect());
                continue;
            };
            let raw = csv_text(&self.record);
            let parsed = normalize::csv_row_to_object(headers, &self.record)
                .and_then(normalize::from_object);
            return Some(Ok(Record { line, raw, parsed }));
        }
    }
}
