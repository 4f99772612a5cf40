//! Where switchyard keeps its data.
