.PHONY: bench

# Benchmark (issue 8): `make bench`, or e.g. `make bench BENCH_ARGS="--repeat 3"`.
bench:
	python3 -m pip install --quiet -r requirements/bench.txt
	python3 -m bench.run $(BENCH_ARGS)
