"""reports stage of l1ad."""
