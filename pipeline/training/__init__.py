"""Training: the teacher and student loops, and the runtime they run on (device, precision, processes)."""
