//! The governors' documents: the DR report and the recovery sheet, their document model and renderers.

pub mod doc;
pub mod fleet;
pub mod html;
pub mod pdf;
pub mod report;
pub mod sheet;
