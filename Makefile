# FUZZ_SECONDS: how long each fuzz target runs (`make fuzz`).
FUZZ_SECONDS ?= 60

.PHONY: fuzz

## fuzz: run every cargo-fuzz target in fuzz/ for $(FUZZ_SECONDS)s each (installs cargo-fuzz if missing)
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh
