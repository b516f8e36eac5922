//! What a dataset reader skipped and why ([`SkipReason`]), counted and described in a
//! [`SkipReport`]: malformed input never aborts a dataset (the module docs of [`super`]).
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// How many messages a [`SkipReport`] keeps (the counts are always complete).
pub const MAX_SKIP_MESSAGES: usize = 20;

/// Why something was skipped. Serialises as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The image file does not exist.
    MissingImage,
    /// The image file exists but its header cannot be read.
    UnreadableImage,
    /// A COCO annotation's `image_id` is not in `images`.
    UnknownImage,
    /// An annotation / mask PNG or annotation JSON is missing, unreadable or truncated.
    UnreadableMask,
    /// An annotation PNG whose colour model cannot hold ids (RGB).
    UnsupportedMask,
    /// A mask (or RLE `size`, or annotation JSON) whose size differs from the image's.
    SizeMismatch,
    /// An RLE whose runs do not add up to `height * width`.
    RleLength,
    /// A JSON record or field that cannot be decoded (missing fields, wrong types, a bad
    /// counts string, a bad polygon).
    Malformed,
    /// An object of area 0.
    EmptyObject,
    /// A COCO crowd annotation, skipped by default.
    Crowd,
    /// A sample with no usable object left.
    NoObjects,
    /// Objects of a sample beyond [`crate::limits::MAX_OBJECTS`] (counted once per sample;
    /// the first ones are decoded).
    TooManyObjects,
}

impl SkipReason {
    pub fn name(self) -> &'static str {
        match self {
            Self::MissingImage => "missing_image",
            Self::UnreadableImage => "unreadable_image",
            Self::UnknownImage => "unknown_image",
            Self::UnreadableMask => "unreadable_mask",
            Self::UnsupportedMask => "unsupported_mask",
            Self::SizeMismatch => "size_mismatch",
            Self::RleLength => "rle_length",
            Self::Malformed => "malformed",
            Self::EmptyObject => "empty_object",
            Self::Crowd => "crowd",
            Self::NoObjects => "no_objects",
            Self::TooManyObjects => "too_many_objects",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts of what was skipped and why, with the first [`MAX_SKIP_MESSAGES`] messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipReport {
    pub count_by_reason: BTreeMap<SkipReason, usize>,
    pub messages: Vec<String>,
}

impl SkipReport {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one skip; keeps the message while fewer than [`MAX_SKIP_MESSAGES`] are kept.
    /// Crowd skips are counted without a message (they are expected, not errors).
    pub fn record(&mut self, reason: SkipReason, message: impl Into<String>) {
        *self.count_by_reason.entry(reason).or_insert(0) += 1;
        if reason != SkipReason::Crowd && self.messages.len() < MAX_SKIP_MESSAGES {
            self.messages.push(format!("{reason}: {}", message.into()));
        }
    }

    pub fn count(&self, reason: SkipReason) -> usize {
        self.count_by_reason.get(&reason).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.count_by_reason.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Adds another report's counts (and messages, up to the limit).
    pub fn merge(&mut self, other: &SkipReport) {
        for (r, n) in &other.count_by_reason {
            *self.count_by_reason.entry(*r).or_insert(0) += n;
        }
        let room = MAX_SKIP_MESSAGES.saturating_sub(self.messages.len());
        self.messages
            .extend(other.messages.iter().take(room).cloned());
    }
}

impl fmt::Display for SkipReport {
    /// One line of counts, then the kept messages, one per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing skipped");
        }
        let parts: Vec<String> = self
            .count_by_reason
            .iter()
            .map(|(r, n)| format!("{n} {r}"))
            .collect();
        write!(f, "skipped {} ({})", self.total(), parts.join(", "))?;
        for m in &self.messages {
            write!(f, "\n  {m}")?;
        }
        let shown = self.messages.len();
        let total = self.total() - self.count(SkipReason::Crowd);
        if total > shown {
            write!(f, "\n  ... and {} more", total - shown)?;
        }
        Ok(())
    }
}
