//! The assistant: understands what a caller texts and decides the reply and the booking.
//! Pure code: no I/O, no clock of its own, no randomness, so every decision can be replayed.

mod dialogue;
pub mod parse;
pub mod reply;
pub mod slots;
pub mod text;

pub use dialogue::{respond, Action, Appointment, Day, HandOff, Input, Outcome, State};
pub use reply::textback;
