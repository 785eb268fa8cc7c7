"""emulation stage of l1ad."""
