OBJS = a.o b.o c.o d.o
all: $(OBJS)
%.o: %.c
	gcc -O2 -c $< -o $@
clean:
	rm -f $(OBJS)
