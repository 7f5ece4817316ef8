module example.com/robotd

go 1.19
