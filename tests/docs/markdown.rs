//! Just enough Markdown for the documentation tests: fenced code blocks, headings and their
//! GitHub anchors, and relative links. Line-based, like the documents it reads: fences are
//! runs of three or more backticks, indented or not (a fence inside a list item is
//! indented), and the block's text loses that indentation.

/// One fenced code block.
#[derive(Debug, Clone)]
pub struct Block {
    /// The document, relative to the repository root.
    pub file: String,
    /// Line of the opening fence, from 1.
    pub line: usize,
    /// The first word of the info string: the language (`sh`, `console`, `yaml`...).
    pub lang: String,
    /// The words after it (`skip=network`, `fixture`).
    pub attrs: Vec<String>,
    /// The lines between the fences, without the fence's indentation.
    pub lines: Vec<String>,
}

impl Block {
    /// Where the block is, as `file:line`, for messages.
    pub fn place(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The value of `key=value` among the attributes.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }

    /// Whether the bare word `word` is among the attributes.
    pub fn has(&self, word: &str) -> bool {
        self.attrs.iter().any(|a| a == word)
    }
}

/// The fenced code blocks of `text`, in order. An unclosed fence is an error.
pub fn fenced_blocks(file: &str, text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<(Block, usize, usize)> = None; // block, indent, fence length
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let ticks = trimmed.bytes().take_while(|&b| b == b'`').count();
        match open.take() {
            None if ticks >= 3 => {
                let mut words = trimmed[ticks..].split_whitespace().map(str::to_owned);
                let block = Block {
                    file: file.to_owned(),
                    line: index + 1,
                    lang: words.next().unwrap_or_default(),
                    attrs: words.collect(),
                    lines: Vec::new(),
                };
                open = Some((block, indent, ticks));
            }
            None => {}
            Some((block, _, fence)) if ticks >= fence && trimmed[ticks..].trim().is_empty() => {
                blocks.push(block);
            }
            Some((mut block, indent, fence)) => {
                let strip = line.len() - line.trim_start_matches(' ').len();
                block.lines.push(line[strip.min(indent)..].to_owned());
                open = Some((block, indent, fence));
            }
        }
    }
    match open {
        Some((block, ..)) => Err(format!("{}: the fence is never closed", block.place())),
        None => Ok(blocks),
    }
}

/// The lines of `text` outside fenced code blocks, with their numbers from 1.
pub fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fence = 0;
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let ticks = trimmed.bytes().take_while(|&b| b == b'`').count();
        if fence == 0 && ticks >= 3 {
            fence = ticks;
        } else if fence > 0 && ticks >= fence && trimmed[ticks..].trim().is_empty() {
            fence = 0;
        } else if fence == 0 {
            lines.push((index + 1, line));
        }
    }
    lines
}

/// The anchors GitHub gives the headings of `text`: lower case, spaces to `-`, punctuation
/// other than `-` and `_` dropped, and `-1`, `-2`... after a repeated one.
pub fn anchors(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut counts: std::collections::HashMap<String, usize> = Default::default();
    for (_, line) in prose_lines(text) {
        let Some(title) = line.strip_prefix('#') else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let repeats = counts.entry(slug.clone()).or_default();
        *repeats += 1;
        let repeats = *repeats - 1;
        seen.push(if repeats == 0 {
            slug
        } else {
            format!("{slug}-{repeats}")
        });
    }
    seen
}

/// The targets of the inline links `[text](target)` in the prose of `text`, with their line.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                found.push((number, rest[..end].to_owned()));
                rest = &rest[end..];
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_info_and_lose_their_indentation() {
        let text = "a\n\n```console skip=network\n$ x\n```\n- item\n\n  ```sh\n  y\n    z\n  ```\n";
        let blocks = fenced_blocks("f.md", text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].lang, "console");
        assert_eq!(blocks[0].attr("skip"), Some("network"));
        assert_eq!(blocks[0].line, 3);
        assert_eq!(blocks[1].lines, ["y", "  z"]);
        assert!(fenced_blocks("f.md", "```sh\nx\n").is_err());
    }

    #[test]
    fn anchors_are_githubs() {
        let text =
            "# Top\n## Sharding: `hash --shard` & merge\n```sh\n# not a heading\n```\n## Top\n";
        assert_eq!(
            anchors(text),
            ["top", "sharding-hash---shard--merge", "top-1"]
        );
    }
}
