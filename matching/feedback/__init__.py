"""People's ratings: the event log and the blend learner."""
