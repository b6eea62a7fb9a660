
r1ACCEPTok"
c"
c