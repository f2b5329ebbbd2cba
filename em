/dev/fd/3: line 97: ./emopipe: No such file or directory
