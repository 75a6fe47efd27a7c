module cloister.test/goprog

go 1.19
