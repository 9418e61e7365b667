# SwiftChat: the two commands are `make run` and `make test`.
.PHONY: run test stop status install build bench clean-stack

REPLICAS ?= 1

run:            ## install what is missing, start the stack and every service behind the gateway (REPLICAS=2: two of each)
	@REPLICAS=$(REPLICAS) bash infra/run.sh run

test:           ## install and start what is missing, run every test, stop what it started
	@bash infra/test.sh

stop:           ## stop the services and the local stack
	@bash infra/run.sh stop

bench:          ## release build + load test through the whole chat path (USERS, RATES, DURATION)
	@bash infra/bench.sh

status:         ## what is up
	@bash infra/stack.sh status

install:        ## apt-get the system packages only
	@bash infra/stack.sh install

build:
	@swift build

clean-stack:    ## stop everything and delete the local data folder
	@bash infra/run.sh stop
	@rm -rf .stack
