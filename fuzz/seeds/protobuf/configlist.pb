
r5agent-1
c