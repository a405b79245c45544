"""Speed, kept apart from the maths: the thread pool that splits large operations into
row blocks, and the fast kernels the layers may run instead of their formulas."""
