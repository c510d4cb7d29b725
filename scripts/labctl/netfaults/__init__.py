"""Network faults between the hosts of a system started with --hosts (rules: the faults as data and as nftables
rules; control: applying them; delayer: a slow link without netem; command: `labctl net`)."""
