"""events stage of l1ad."""
