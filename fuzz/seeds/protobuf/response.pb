
r1Acceptok"
c"
c