"""What runs read and write: the network spec, arch.json, genotypes, run folders, user files, pictures, fronts."""
