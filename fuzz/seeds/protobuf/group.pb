
r1
gdesc
envprod