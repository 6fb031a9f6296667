"""Stage `augment` (workflow/rules/augment.smk): fine-tune GPT-2 on a task's training sentences (`gpt2`, rule
`gpt2`) and sample the augmentation sentences in resumable shards (`sample`, rule `sample`)."""
