//! Chat titles.
//!
//! Upstream asks the model for a title of at most 80 characters and strips
//! quotes and markdown from what comes back. We do the same with a model's
//! title, and make one from the first words of the message when there is
//! no model title (the offline model, or a provider that failed).

/// The longest title kept, as upstream's title prompt asks.
pub const MAX_CHARS: usize = 80;

/// What a chat is called before it has a better title.
pub const FALLBACK: &str = "New chat";

/// A title from the first words of `text`, cut at a word boundary.
pub fn from_text(text: &str) -> String {
    let words = text.split_whitespace();
    let mut title = String::new();
    for word in words {
        let extra = usize::from(!title.is_empty()) + word.chars().count();
        if title.chars().count() + extra > MAX_CHARS {
            if title.is_empty() {
                title = word.chars().take(MAX_CHARS).collect();
            }
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if title.is_empty() {
        FALLBACK.to_owned()
    } else {
        title
    }
}

/// A model's title, cleaned as upstream cleans it: leading `#`, `*`,
/// quotes and spaces, and trailing quotes, go; so do line breaks.
pub fn clean(model_title: &str) -> Option<String> {
    let first_line = model_title.lines().find(|l| !l.trim().is_empty())?;
    let title = first_line
        .trim_start_matches(['#', '*', '"', ' ', '\t'])
        .trim_end_matches('"')
        .trim();
    (!title.is_empty()).then(|| title.chars().take(MAX_CHARS).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_first_words_up_to_eighty_characters() {
        assert_eq!(from_text("  Hello   world  "), "Hello world");
        assert_eq!(from_text(""), FALLBACK);
        let long = "word ".repeat(40);
        let title = from_text(&long);
        assert!(
            title.len() <= MAX_CHARS && title.ends_with("word"),
            "{title}"
        );
        assert_eq!(from_text(&"x".repeat(200)).chars().count(), MAX_CHARS);
    }

    #[test]
    fn model_titles_lose_quotes_and_markdown() {
        assert_eq!(
            clean("## \"Rust lifetimes\""),
            Some("Rust lifetimes".into())
        );
        assert_eq!(
            clean("\n**Trip to Rome**\nextra"),
            Some("Trip to Rome**".into())
        );
        assert_eq!(clean("  \n "), None);
    }
}
