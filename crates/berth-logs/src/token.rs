//! Positions in a log stream and the paging tokens built from them (pure).
//!
//! Every stored event has a position: its timestamp, then a store-wide sequence number, so
//! positions order events exactly as CloudWatch Logs returns them (by time, then by arrival).
//! GetLogEvents' tokens are positions with a direction, formed as AWS forms them
//! (`f/<digits>` forward, `b/<digits>` backward): reading forward returns events after the
//! position, and at the end of a stream the same `nextForwardToken` comes back, which is how
//! `aws logs get-log-events` and the SDKs know to stop. FilterLogEvents' `nextToken` is the
//! position of the last event returned.

/// A position between events: `(timestamp, seq)`. Events sort by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Epoch milliseconds.
    pub ts: i64,
    /// The store-wide sequence number (0 is before every event of that millisecond).
    pub seq: u64,
}

impl Pos {
    /// Before every event.
    pub const START: Pos = Pos {
        ts: i64::MIN,
        seq: 0,
    };
    /// After every event.
    pub const END: Pos = Pos {
        ts: i64::MAX,
        seq: u64::MAX,
    };

    /// A position.
    pub fn new(ts: i64, seq: u64) -> Self {
        Self { ts, seq }
    }

    fn digits(self) -> String {
        // The timestamp with its sign bit flipped sorts as unsigned; 20 digits each.
        format!("{:020}{:020}", (self.ts as u64) ^ (1 << 63), self.seq)
    }

    fn from_digits(s: &str) -> Option<Self> {
        if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ts: u64 = s[..20].parse().ok()?;
        let seq: u64 = s[20..].parse().ok()?;
        Some(Self {
            ts: (ts ^ (1 << 63)) as i64,
            seq,
        })
    }
}

/// Which way a GetLogEvents token reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Events after the position, oldest first.
    Forward,
    /// Events before the position (the newest of them), returned oldest first.
    Backward,
}

/// A GetLogEvents token: a position and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamToken {
    /// Where reading resumes.
    pub pos: Pos,
    /// Which way.
    pub direction: Direction,
}

impl StreamToken {
    /// Forward from `pos`.
    pub fn forward(pos: Pos) -> Self {
        Self {
            pos,
            direction: Direction::Forward,
        }
    }

    /// Backward from `pos`.
    pub fn backward(pos: Pos) -> Self {
        Self {
            pos,
            direction: Direction::Backward,
        }
    }

    /// The wire form: `f/<40 digits>` or `b/<40 digits>`.
    pub fn encode(self) -> String {
        let d = match self.direction {
            Direction::Forward => 'f',
            Direction::Backward => 'b',
        };
        format!("{d}/{}", self.pos.digits())
    }

    /// Parses a token this module encoded.
    pub fn decode(s: &str) -> Option<Self> {
        let (d, rest) = s.split_once('/')?;
        let direction = match d {
            "f" => Direction::Forward,
            "b" => Direction::Backward,
            _ => return None,
        };
        Some(Self {
            pos: Pos::from_digits(rest)?,
            direction,
        })
    }
}

/// The tokens GetLogEvents answers with, given the request's token position and the
/// positions of the first and last events returned (none when the page is empty): forward
/// resumes after the last event, backward before the first; an empty page gives back the
/// position it was asked for, so a caller at the end of the stream sees the same token.
pub fn page_tokens(asked: Pos, first: Option<Pos>, last: Option<Pos>) -> (String, String) {
    let fwd = StreamToken::forward(last.unwrap_or(asked)).encode();
    let back = StreamToken::backward(first.unwrap_or(asked)).encode();
    (fwd, back)
}

/// FilterLogEvents' `nextToken` for a page that ended at `last`.
pub fn filter_token(last: Pos) -> String {
    format!("n/{}", last.digits())
}

/// Parses a FilterLogEvents `nextToken`.
pub fn decode_filter_token(s: &str) -> Option<Pos> {
    Pos::from_digits(s.strip_prefix("n/")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tokens_look_like_aws_ones() {
        let t = StreamToken::forward(Pos::new(1_700_000_000_000, 42)).encode();
        assert!(t.starts_with("f/"));
        assert_eq!(t.len(), 42);
        assert_eq!(
            StreamToken::decode(&t),
            Some(StreamToken::forward(Pos::new(1_700_000_000_000, 42)))
        );
        assert_eq!(StreamToken::decode("x/123"), None);
        assert_eq!(StreamToken::decode("f/12"), None);
    }

    #[test]
    fn an_empty_page_repeats_the_token() {
        let asked = Pos::new(5, 7);
        let (f, b) = page_tokens(asked, None, None);
        assert_eq!(StreamToken::decode(&f).unwrap().pos, asked);
        assert_eq!(StreamToken::decode(&b).unwrap().pos, asked);
        let (f2, _) = page_tokens(StreamToken::decode(&f).unwrap().pos, None, None);
        assert_eq!(f, f2);
    }

    proptest! {
        #[test]
        fn positions_round_trip_and_keep_order(a in any::<i64>(), s in any::<u64>(), b in any::<i64>(), t in any::<u64>()) {
            let (p, q) = (Pos::new(a, s), Pos::new(b, t));
            prop_assert_eq!(Pos::from_digits(&p.digits()), Some(p));
            prop_assert_eq!(p.cmp(&q), p.digits().cmp(&q.digits()));
            prop_assert_eq!(decode_filter_token(&filter_token(p)), Some(p));
        }
    }
}
