//! How a value is mapped to an integer code: the paper's floor and ceil beside nearest.

use serde::{Deserialize, Serialize};

/// How values are mapped to integer codes (plans, the grid, the engine's inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    /// Round to nearest, ties to even.
    Nearest,
    /// Round toward minus infinity (grid points stay put, see [`crate::grid`]).
    Floor,
    /// Round toward plus infinity (grid points stay put, see [`crate::grid`]).
    Ceil,
    /// floor(x + u), u ~ U[0, 1) from a seeded generator: unbiased in expectation.
    Stochastic,
}

impl Rounding {
    /// The three deterministic modes the paper searches over.
    pub const SEARCHED: [Rounding; 3] = [Rounding::Nearest, Rounding::Floor, Rounding::Ceil];

    /// One-letter code used in compact plan strings (`N`, `F`, `C`, `S`).
    pub fn letter(self) -> char {
        match self {
            Rounding::Nearest => 'N',
            Rounding::Floor => 'F',
            Rounding::Ceil => 'C',
            Rounding::Stochastic => 'S',
        }
    }

    /// The mode a plan letter stands for (the inverse of [`Rounding::letter`]).
    pub fn from_letter(c: char) -> Option<Rounding> {
        [Rounding::Nearest, Rounding::Floor, Rounding::Ceil, Rounding::Stochastic].into_iter().find(|r| r.letter() == c)
    }

    /// Whether the mode needs random draws (the integer engine runs only the others).
    pub fn is_stochastic(self) -> bool {
        self == Rounding::Stochastic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip() {
        for r in [Rounding::Nearest, Rounding::Floor, Rounding::Ceil, Rounding::Stochastic] {
            assert_eq!(Rounding::from_letter(r.letter()), Some(r));
        }
        assert_eq!(Rounding::from_letter('X'), None);
    }
}
