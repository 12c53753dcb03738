"""Running a study: plan (variant, seed) runs, execute them, store their records."""
