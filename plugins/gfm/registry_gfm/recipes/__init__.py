"""Named, complete imagery pipeline configs."""
