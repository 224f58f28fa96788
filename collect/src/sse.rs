//! Server-sent events, as the Streamable HTTP transport frames its responses: the `data`
//! of each event, fed chunk by chunk as the proxy forwards them.

/// Collects the `data` of each event from a byte stream.
pub struct SseParser {
    line: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    max: usize,
    oversize: bool,
    /// Bytes of the current line past the limit, and of the current event's data in all.
    line_dropped: usize,
    data_size: usize,
}

impl SseParser {
    /// `max`: the most bytes of one event's data kept (the rest is forwarded, not parsed).
    pub fn new(max: usize) -> Self {
        Self {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            max,
            oversize: false,
            line_dropped: 0,
            data_size: 0,
        }
    }

    /// Feeds bytes; returns the data of every event they complete. Data over the limit
    /// comes back as `Err(its size)`.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Vec<u8>, usize>> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                let line = line.strip_suffix(b"\r").unwrap_or(&line);
                self.line_done(line, &mut out);
                self.line_dropped = 0;
            } else if self.line.len() <= self.max {
                self.line.push(b);
            } else {
                self.oversize = true;
                self.line_dropped += 1;
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<Result<Vec<u8>, usize>>) {
        if line.is_empty() {
            if self.has_data {
                let data = std::mem::take(&mut self.data);
                let size = std::mem::take(&mut self.data_size);
                out.push(if std::mem::take(&mut self.oversize) { Err(size) } else { Ok(data) });
                self.has_data = false;
            }
            return;
        }
        if let Some(value) = line.strip_prefix(b"data") {
            let value = match value.first() {
                Some(b':') => &value[1..],
                None => value,
                Some(_) => return, // another field whose name starts with "data"
            };
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if self.has_data {
                self.data.push(b'\n');
                self.data_size += 1;
            }
            self.data_size += value.len() + self.line_dropped;
            if self.data.len() + value.len() <= self.max {
                self.data.extend_from_slice(value);
            } else {
                self.oversize = true;
            }
            self.has_data = true;
        }
        // `event:`, `id:`, `retry:` and comments carry no JSON-RPC.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_multi_line_data() {
        let mut p = SseParser::new(1024);
        assert!(p.push(b"event: message\r\nid: 1\r\ndata: {\"a\"").is_empty());
        let out = p.push(b":1}\r\n\r\n: comment\n\ndata: x\ndata: y\n\n");
        assert_eq!(out, vec![Ok(b"{\"a\":1}".to_vec()), Ok(b"x\ny".to_vec())]);
        let mut small = SseParser::new(8);
        assert_eq!(small.push(b"data: 0123456789\n\n"), vec![Err(10)]);
        assert_eq!(small.push(b"data: ok\n\n"), vec![Ok(b"ok".to_vec())]);
    }
}
