
r3agent-1tend"0.1*10.0.0.12
envprod:running@€âÏª