"""core: what every stage shares and nothing else: the fixed-point vocabulary, atomic file writing
(and figure saving), tool versions. It imports no other l1ad stage."""
