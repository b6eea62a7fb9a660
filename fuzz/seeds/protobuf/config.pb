
r2(
ctendd"component x { command x; }