//! The homomorphic circuits. They need a server key set on the calling thread (and on
//! every thread of the rayon pool they run in).

use rayon::prelude::*;
use tfhe::prelude::*;
use tfhe::{FheBool, FheUint8};

use crate::matching::NO_DRIVER;

/// A rider's encrypted grid position.
pub struct Rider {
    /// Column, `0..=GRID_MAX`.
    pub x: FheUint8,
    /// Row, `0..=GRID_MAX`.
    pub y: FheUint8,
}

/// A driver's encrypted grid position and availability.
pub struct Driver {
    /// Column, `0..=GRID_MAX`.
    pub x: FheUint8,
    /// Row, `0..=GRID_MAX`.
    pub y: FheUint8,
    /// Whether the driver takes riders now.
    pub available: FheBool,
}

/// `|a - b|`: one overflowing subtraction, whose borrow selects between the difference
/// and its negation — cheaper than a comparison followed by two subtractions.
pub fn abs_diff(a: &FheUint8, b: &FheUint8) -> FheUint8 {
    let (diff, borrow) = a.overflowing_sub(b);
    let negated = -&diff;
    borrow.select(&negated, &diff)
}

/// The Manhattan distance from the rider to the driver, or [`NO_DRIVER`] when the driver
/// is unavailable. Exact on the grid: at most `2 * GRID_MAX = 254`, so the 8-bit sum
/// cannot wrap and never reaches `NO_DRIVER`.
pub fn distance(rider: &Rider, driver: &Driver) -> FheUint8 {
    let (dx, dy) = rayon::join(
        || abs_diff(&rider.x, &driver.x),
        || abs_diff(&rider.y, &driver.y),
    );
    let sum = &dx + &dy;
    driver.available.scalar_select(&sum, NO_DRIVER)
}

/// Merges two `(distance, index)` candidates into the nearer one; `left` wins ties, so a
/// tree that always passes the lower indices on the left yields the lowest index.
pub fn merge(left: &(FheUint8, FheUint8), right: &(FheUint8, FheUint8)) -> (FheUint8, FheUint8) {
    let take_left = left.0.le(&right.0);
    rayon::join(
        || take_left.select(&left.0, &right.0),
        || take_left.select(&left.1, &right.1),
    )
}

/// Reduces `(distance, index)` candidates to the nearest one with a fixed tree: each level
/// merges neighbours `(0, 1), (2, 3), …` in parallel and passes an odd last one up
/// unchanged, so the lower indices are always on the left (ties go to the lowest index),
/// the depth is `ceil(log2 N)` merges and the shape does not depend on the thread count.
/// `merged` is called after each merge. `None` when there is no candidate.
pub fn arg_min(
    mut level: Vec<(FheUint8, FheUint8)>,
    merged: &(dyn Fn() + Sync),
) -> Option<(FheUint8, FheUint8)> {
    while level.len() > 1 {
        level = level
            .into_par_iter()
            .chunks(2)
            .map(|mut pair| {
                let right = pair.pop()?;
                let Some(left) = pair.pop() else {
                    return Some(right);
                };
                let m = merge(&left, &right);
                merged();
                Some(m)
            })
            .collect::<Option<Vec<_>>>()?;
    }
    level.pop()
}
